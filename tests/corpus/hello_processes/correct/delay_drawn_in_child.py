# Each child draws its own random delay in a module-level helper, then calls hello(i, d); main(count, delay)
# hands delay on with an explicit `is None` test.
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def _greet(n, delay):
    hello(n, random.randint(1, 3) if delay is None else delay)


def main(count=10, delay=None):
    children = [Process(target=_greet, args=(i,), kwargs={"delay": delay}) for i in range(count)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    print("Done!")


if __name__ == "__main__":
    main()

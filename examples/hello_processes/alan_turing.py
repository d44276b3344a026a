import multiprocessing as mp
from random import randint
from time import sleep


def hello(n, delay):
    sleep(delay)
    print(f"[{n}] Hello!", flush=True)


def main(count=10, delay=None):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=hello, kwargs={"n": i, "delay": randint(1, 3) if delay is None else delay})
             for i in range(count)]
    for p in procs:
        p.start()
    while procs:
        procs.pop().join()
    print("Done!")


if __name__ == "__main__":
    main()

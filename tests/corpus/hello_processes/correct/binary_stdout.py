"""Writes its lines as bytes to sys.stdout.buffer, and starts children from a spawn context."""
import multiprocessing as mp
import random
import sys
import time


def say(text):
    sys.stdout.buffer.write(text.encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def hello(n, delay):
    time.sleep(delay)
    say(f"[{n}] Hello!")


def main(count=10, delay=None):
    ctx = mp.get_context("spawn")
    procs = []
    for i in range(count):
        d = random.randint(1, 3) if delay is None else delay
        procs.append(ctx.Process(target=hello, args=(i, d), name=f"greeter-{i}"))
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    say("Done!")


if __name__ == "__main__":
    main()

from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Process

counter = 0


def increment(times):
    global counter
    counter += 0
    for _ in range(times):
        counter += 1


def run_in_thread(times):
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(increment, times).result()
    return counter


def run_in_process(times):
    child = Process(target=increment, args=[times])
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError("child failed")
    return counter

import threading
import time


class Latch:
    def __init__(self, count):
        self.count = count
        self.lock = threading.Lock()

    def count_down(self):
        with self.lock:
            if self.count > 0:
                self.count -= 1

    def wait(self):
        while True:
            with self.lock:
                if self.count == 0:
                    return True
            time.sleep(0.01)

import threading


class Latch:
    def __init__(self, count):
        self.count = count
        self.opened = threading.Condition()

    def count_down(self):
        if self.count > 0:
            self.count -= 1
            if self.count == 0:
                with self.opened:
                    self.opened.notify_all()

    def wait(self):
        with self.opened:
            while self.count > 0:
                self.opened.wait()
        return True

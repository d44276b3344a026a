import threading


class Latch:
    def __init__(self, count):
        raise NotImplementedError

    def count_down(self):
        raise NotImplementedError

    def wait(self):
        raise NotImplementedError

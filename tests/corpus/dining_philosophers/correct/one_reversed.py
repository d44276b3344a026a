# Left then right, except the last philosopher, who takes right then left; forks numbered i and i - 1.
import threading
import time


def eat(i):
    time.sleep(0.001)


class Philosopher(threading.Thread):
    def __init__(self, i, left, right, meals, eaten):
        super().__init__(name=f"philosopher-{i}")
        self.i, self.left, self.right, self.meals, self.eaten = i, left, right, meals, eaten

    def run(self):
        first, second = (self.right, self.left) if self.i == len(self.eaten) - 1 else (self.left, self.right)
        for _ in range(self.meals):
            with first, second:
                eat(self.i)
                self.eaten[self.i] += 1


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    table = [Philosopher(i, forks[i], forks[i - 1], meals, eaten) for i in range(n)]
    for p in table:
        p.start()
    for p in table:
        p.join()
    return eaten

# hostile: returns objects whose __eq__ always says yes (an int subclass and a list subclass)
# expect-message: returned


class Yes(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class YesList(list):
    def __eq__(self, other):
        return True


def answer():
    return Yes(0)


def squares(n):
    return YesList()

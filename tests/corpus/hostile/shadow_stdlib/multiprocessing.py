Pool = None

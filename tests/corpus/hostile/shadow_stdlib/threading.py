raise ImportError("my own threading")

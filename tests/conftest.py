import os
import sys

sys.path.insert(0, os.path.dirname(__file__))  # the shared test helpers: checks.py, op_cases.py

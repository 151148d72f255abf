"""Code that runs inside a pool's child process.

This package never imports Textual or Rich (a test checks it): the worker must stay small, and
a UI library has no business in the process whose crash we are recording. Frameworks (torch,
mlx) are imported here only, lazily, by the backend that needs them.
"""

"""Command-line tools for operators, installed with the shared package."""

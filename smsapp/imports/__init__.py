"""Contacts import (pack §6): read a CSV, map its columns, decide each row, commit once."""

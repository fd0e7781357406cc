"""Downstream tasks: text classification / regression (GLUE-style) and extractive question answering."""

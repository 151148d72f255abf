"""Scripted demos: scenario files (model), whether their versions can run here (choose), and
the conductor that plays their steps against live pools."""

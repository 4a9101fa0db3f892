"""The chaos run (issue 7): faults, kills and a Redis restart, then an audit that loses
nothing. Run with `python -m bench.chaos`."""

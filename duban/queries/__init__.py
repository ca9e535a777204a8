"""The read side: every SELECT behind a figure, a list or a lookup, one module per loop.

`kernel` is the public SQL kernel all of them build on (the tables and their columns,
`seconds_between`, `day_of`, `ordered`, `count_if`, `ratio`, `done_by`, `frame`, `typed`,
`plain`); `units` is the units directory and `notices` reads the recorded notices and their
deliveries. `metrics` (the three rates, volumes, hot spots, plans), `daily`, `weekly`,
`monthly`, `quarterly`, `annual` and `lookback` hold each loop's queries.
"""

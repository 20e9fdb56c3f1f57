"""Rules more than one service applies to the same data (plain code, no I/O).

A reason given to a caller never repeats the value it judges.
"""

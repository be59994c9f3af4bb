"""Market-data feed domain logic: exact decimals, Binance messages, L2 books and the local-book procedure.

Pure: knows nothing of processes or shared memory. ``procs/`` wires ``FeedEngine`` to sockets and rings.
"""

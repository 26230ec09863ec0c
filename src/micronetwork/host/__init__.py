"""The trio driver of the protocol cores on a py-libp2p host.

:mod:`.build` (the host: TCP, Noise, our yamux), :mod:`.driver` (runs a core on it: requests,
timers, events), :mod:`.long_streams` (gossip streams), :mod:`.muxer` (our yamux driver) and
:mod:`._noiseio` (Noise messages on the socket). Nothing here is public API: a program uses
:class:`micronetwork.Node`.
"""

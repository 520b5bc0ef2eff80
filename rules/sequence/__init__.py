"""Message sequences: what may follow what (state machines per protocol), one request and
one response, requests left unanswered, sessions that end without SessionStop.

Every rule here reads one walk over the session's V2G messages (analyzer/views/walk.py
:func:`walk`): per TCP connection the requests in order, each with its response (or none),
the state the sequence tables of rules/state_machines.py were in when it came, the
responses that answered nothing or the wrong request, and how the connection ended.
"""

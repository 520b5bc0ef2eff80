"""Transport: TCP connection set-up and resets, retransmission storms, V2GTP framing and
payload types, who closed a connection instead of answering, and whether the EV connected
where the SDP response told it to."""

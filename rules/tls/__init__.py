"""TLS: alerts, the protocol version / cipher suite / key exchange group each application
protocol requires, certificates (validity at the capture's time, profile, chain), mutual
authentication for ISO 15118-20, and TLS used where SDP or the protocol says otherwise.

The TLS events are the dissector's (dissectors/tls.py): handshake messages described with
their fields (ClientHello offers, ServerHello choice, Certificate chains described by
dissectors/x509info.py), alerts, and per connection ``ctx.connections[i]["tls"]`` (version,
cipher suite, group, decrypting, counters). A TLS 1.3 handshake is encrypted after the
ServerHello: certificates, CertificateRequest and alerts are visible only with the
secrets (key log); without them these rules stay silent and CAP005 says why.

Encrypted application data that cannot be decrypted is a capture-quality matter (CAP005),
never a TLS error.
"""

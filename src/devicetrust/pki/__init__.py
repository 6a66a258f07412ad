"""The certificate authority: key backends (`devicetrust.pki.keys`), issuance, CRL and OCSP.

Never holds a CA private key in clear outside the process that uses it (see `pki.keys`).
"""

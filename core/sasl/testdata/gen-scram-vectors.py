#!/usr/bin/env python3
"""One-off generator of SCRAM test vectors, independent of the TypeScript code under test.

Only Python's standard library (hashlib.pbkdf2_hmac, hmac, base64) and RFC 5802 §3 / §7 as written:
  SaltedPassword  := Hi(Normalize(password), salt, i)
  ClientKey       := HMAC(SaltedPassword, "Client Key");  StoredKey := H(ClientKey)
  AuthMessage     := client-first-message-bare + "," + server-first-message + "," + client-final-message-without-proof
  ClientProof     := ClientKey XOR HMAC(StoredKey, AuthMessage)
  ServerSignature := HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
Run: python3 core/sasl/testdata/gen-scram-vectors.py  (output pasted into core/sasl/scram-server.test.ts)
"""
import base64, hashlib, hmac, json

def b64(b): return base64.b64encode(b).decode()

def vector(name, hashname, user_escaped, password, gs2, cb_data, cnonce, snonce, salt, i):
    salted = hashlib.pbkdf2_hmac(hashname, password.encode(), salt, i)
    client_key = hmac.new(salted, b"Client Key", hashname).digest()
    stored_key = hashlib.new(hashname, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashname).digest()
    bare = f"n={user_escaped},r={cnonce}"
    client_first = gs2 + bare
    server_first = f"r={cnonce}{snonce},s={b64(salt)},i={i}"
    without_proof = f"c={b64(gs2.encode() + cb_data)},r={cnonce}{snonce}"
    auth = f"{bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored_key, auth, hashname).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_sig = hmac.new(server_key, auth, hashname).digest()
    return {
        "name": name, "password": password, "cbData": b64(cb_data),
        "salt": b64(salt), "iterations": i,
        "storedKey": b64(stored_key), "serverKey": b64(server_key), "clientKey": b64(client_key),
        "clientFirst": client_first, "serverFirst": server_first,
        "clientFinal": f"{without_proof},p={b64(proof)}", "serverFinal": f"v={b64(server_sig)}",
    }

out = [
    vector("SCRAM-SHA-512", "sha512", "user", "pencil", "n,,", b"",
           "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", bytes.fromhex("5b6d99687a9a45c2a1f8e5d1c0b9a877"), 4096),
    vector("SCRAM-SHA-256-PLUS tls-exporter", "sha256", "user", "pencil", "p=tls-exporter,,", bytes(range(32)),
           "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j", bytes.fromhex("4125c247e43ab1e93c6dff76"), 4096),
    vector("SCRAM-SHA-512-PLUS tls-server-end-point, authzid, escaped name, UTF-8 password", "sha512",
           "jul=2Ciet=3Dx", "p\u00e4ssw\u00f6rd", "p=tls-server-end-point,a=juliet@example.org,", b"\xab" * 32,
           "Xq0gZQ6Mu1nvOQ3Sbe0dSA", "mK3i8tUeUq4Rk6bzl6m3", bytes.fromhex("00ff10ef20df30cf40bf50af609f708f"), 5000),
]
print(json.dumps(out, indent=2, ensure_ascii=False))

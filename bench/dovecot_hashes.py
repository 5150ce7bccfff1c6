"""Gives the reference Dovecot Satchel's own Argon2id hashes (m=19456 KiB,
t=2, p=1), so a login costs both servers the same.

    python3 bench/dovecot_hashes.py SATCHEL_INDEX DOVECOT_USERS_FILE
"""
import sqlite3
import sys

hashes = dict(sqlite3.connect(sys.argv[1]).execute("SELECT address, password_hash FROM accounts"))
lines = []
for line in open(sys.argv[2]):
    user, _, rest = line.rstrip("\n").split(":", 2)
    lines.append(f"{user}:{{ARGON2ID}}{hashes[user + '@example.test']}:{rest}")
open(sys.argv[2], "w").write("\n".join(lines) + "\n")

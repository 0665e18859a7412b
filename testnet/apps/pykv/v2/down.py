"""State transform pykv 2.0.0 -> 1.0.0, run when 2.0.0 is rolled back or revoked after it
committed, so the writes made under 2.0.0 are kept: $UPGOSSIP_FROM/state.json
{"k": {"value": "value", "updated": ms}} -> $UPGOSSIP_TO/state.json {"k": "value"}.

The times are dropped (1.0.0 has none), and the file is written exactly as 1.0.0's server
writes it, so down(up(state)) gives back the same bytes. Exit 0 on success; a damaged file
is refused with the reason on stderr, and the switch fails with the old state untouched.
"""
import json
import os
import sys

try:
    src = os.path.join(os.environ['UPGOSSIP_FROM'], 'state.json')
    dst = os.path.join(os.environ['UPGOSSIP_TO'], 'state.json')
except KeyError as err:
    sys.exit(f'down.py: {err.args[0]} is not set (run by upgossip with UPGOSSIP_FROM and UPGOSSIP_TO)')

try:
    with open(src, encoding='utf-8') as f:
        old = json.load(f)
except FileNotFoundError:
    old = {}  # a peer that never stored anything
except ValueError as err:
    sys.exit(f'down.py: {src} is damaged: {err}')
if not isinstance(old, dict) or not all(isinstance(e, dict) and isinstance(e.get('value'), str)
                                        for e in old.values()):
    sys.exit(f'down.py: {src} is not pykv 2 state ({{"key": {{"value": "…", "updated": ms}}, ...}})')

new = {key: entry['value'] for key, entry in old.items()}
with open(dst, 'w', encoding='utf-8') as f:
    f.write(json.dumps(new, separators=(',', ':')))  # as 1.0.0's server.py writes it
    f.flush()
    os.fsync(f.fileno())
print(f'down.py: moved {len(new)} keys back to pykv 1 state')

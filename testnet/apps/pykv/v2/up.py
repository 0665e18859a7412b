"""State transform pykv 1.0.0 -> 2.0.0, run by the daemon as a command (the manifest's
`transform.up`): $UPGOSSIP_FROM/state.json {"k": "value"} -> $UPGOSSIP_TO/state.json
{"k": {"value": "value", "updated": 0}}.

$UPGOSSIP_FROM is a read-only copy of the old state; $UPGOSSIP_TO an empty directory that
becomes the new state only if this exits 0. Any other exit rolls the upgrade back, the old
state untouched: so a damaged file is refused here, with the reason on stderr (app.log).

`updated` is 0, "before any write made under 2.0.0": 1.0.0 kept no times, and the result
depends only on the input, so the transform can be checked and replayed.
"""
import json
import os
import sys

try:
    src = os.path.join(os.environ['UPGOSSIP_FROM'], 'state.json')
    dst = os.path.join(os.environ['UPGOSSIP_TO'], 'state.json')
except KeyError as err:
    sys.exit(f'up.py: {err.args[0]} is not set (run by upgossip with UPGOSSIP_FROM and UPGOSSIP_TO)')

try:
    with open(src, encoding='utf-8') as f:
        old = json.load(f)
except FileNotFoundError:
    old = {}  # a peer that never stored anything
except ValueError as err:
    sys.exit(f'up.py: {src} is damaged: {err}')
if not isinstance(old, dict) or not all(isinstance(v, str) for v in old.values()):
    sys.exit(f'up.py: {src} is not pykv 1 state ({{"key": "value", ...}})')

new = {key: {'value': value, 'updated': 0} for key, value in old.items()}
with open(dst, 'w', encoding='utf-8') as f:
    f.write(json.dumps(new, separators=(',', ':')))  # written exactly as server.py writes it
    f.flush()
    os.fsync(f.fileno())
print(f'up.py: moved {len(new)} keys to pykv 2 state')

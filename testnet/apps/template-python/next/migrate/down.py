"""State transform 2.0.0 -> 1.0.0 (`down`), run when 2.0.0 is rolled back or revoked after
it committed: the writes made under 2.0.0 are kept only if this carries them back. It runs
as `up.py` does ($UPGOSSIP_FROM: 2.0.0's state, read-only; $UPGOSSIP_TO: empty; exit 0 =
success). Write the file exactly as 1.0.0's server.py writes it, so that `upgossip check`
finds down(up(state)) == state, byte for byte.
"""
import json
import os
import sys

src = os.path.join(os.environ['UPGOSSIP_FROM'], 'data.json')
dst = os.path.join(os.environ['UPGOSSIP_TO'], 'data.json')
try:
    with open(src, encoding='utf-8') as f:
        data = json.load(f)
except FileNotFoundError:
    print('down: no data.json: nothing to move back')
    sys.exit(0)

# TODO: turn 2.0.0's state back into 1.0.0's {"key": "value"} here

with open(dst, 'w', encoding='utf-8') as f:
    f.write(json.dumps(data, separators=(',', ':')))  # as 1.0.0's server.py writes it
    f.flush()
    os.fsync(f.fileno())
print(f'down: moved {len(data)} keys back')

"""State transform 1.0.0 -> 2.0.0 (`up`). The daemon runs it as a command (the manifest's
`transform.up`) in the package directory, with a time limit, while the app is stopped:

    UPGOSSIP_FROM  a read-only copy of 1.0.0's state directory
    UPGOSSIP_TO    an empty directory that becomes 2.0.0's state only if this exits 0

Any other exit (an uncaught exception too) fails the switch: the peer stays on 1.0.0 with
its state untouched. What this prints goes to the daemon's app.log.

As written it copies data.json unchanged. Change it when 2.0.0 keeps its state in another
shape (testnet/apps/pykv/v2/up.py in upgossip's repository adds a time to every value).
"""
import json
import os
import sys

src = os.path.join(os.environ['UPGOSSIP_FROM'], 'data.json')
dst = os.path.join(os.environ['UPGOSSIP_TO'], 'data.json')
try:
    with open(src, encoding='utf-8') as f:
        data = json.load(f)  # a damaged file raises: the switch fails, the old state stays
except FileNotFoundError:
    print('up: no data.json (this peer never stored anything): nothing to move')
    sys.exit(0)

# TODO: turn `data` into 2.0.0's format here

with open(dst, 'w', encoding='utf-8') as f:
    # written as server.py writes it, so that down(up(state)) gives back the same bytes
    f.write(json.dumps(data, separators=(',', ':')))
    f.flush()
    os.fsync(f.fileno())
print(f'up: moved {len(data)} keys')

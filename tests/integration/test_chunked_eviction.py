"""Issue 15 item 10 (the store's part): a large tensor is whole or missing.

Before, a tensor over 32 MiB was a header key plus chunk keys, each evicted on its own:
with one chunk evicted, HasTensors (the store's missing()) still reported the tensor
present, because it looked at the header only, and the tensor stayed unusable for its
whole TTL (the client, told it was there, never sent it again). Now it is one hash,
written in one transaction, which Redis evicts and expires as one key.

Against a real redis-server under LRU pressure (maxmemory 160 MB, allkeys-lru, 12 tensors
of 40 MiB written through it), for every tensor: missing() says present exactly when
get() returns all its bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from procs import free_port, stop, wait_until
from redis_modes import _client, _server
from remotegrad.proto import codec, keys
from remotegrad.proto.store import CHUNK, RedisTensorStore

pytestmark = pytest.mark.integration


@pytest.fixture
def small_redis(tmp_path):
    port = free_port()
    proc = _server(tmp_path, port, "--maxmemory", "160mb", "--maxmemory-policy", "allkeys-lru")
    try:
        wait_until(lambda: _client(port).ping(), "redis-server", procs=[proc])
        yield port
    finally:
        stop(proc)


@pytest.mark.slow
def test_under_eviction_present_means_whole(small_redis):
    store = RedisTensorStore(f"redis://127.0.0.1:{small_redis}/0")
    tensors = []
    for i in range(12):
        x = np.full(10 * (1 << 20), float(i), np.float32)  # 40 MiB: two chunks
        msg = codec.encode_array(x)
        assert len(msg.data) > CHUNK
        store.put("alice", msg)
        tensors.append(msg)
    evicted = _client(small_redis).info("stats")["evicted_keys"]
    assert evicted > 0  # the pressure was real
    absent = set(store.missing("alice", [m.hash for m in tensors]))
    for msg in tensors:
        got = store.get("alice", msg.hash)
        if msg.hash in absent:
            assert got is None
        else:
            assert got is not None and got.data == msg.data, "present but not whole"
    present = len(tensors) - len(absent)
    print(f"\n{len(tensors)} tensors of 40 MiB into a 160 MB Redis: {evicted} keys evicted, "
          f"{present} present and whole, {len(absent)} missing")
    assert 1 <= present < len(tensors)
    # And what is present is one key: nothing of it can go alone.
    for msg in tensors:
        if msg.hash not in absent:
            assert _client(small_redis).type(keys.tensor_key("alice", msg.hash)) == b"hash"

"""--redis-url's three modes are told apart and parsed in one place (proto/redis_client.py);
a URL that names no Redis is refused when the client is made, with the password hidden.
(The modes themselves run against real servers in tests/integration/test_redis_cluster.py
and test_sentinel.py.)"""

from __future__ import annotations

import pytest

from remotegrad.proto.redis_client import RedisURLError, connect, mode


@pytest.mark.parametrize("url, kind", [
    ("redis://127.0.0.1:6379/0", "single"), ("rediss://h:1/0", "single"),
    ("unix:///tmp/r.sock", "single"), ("redis+sentinel://h:26379/m", "sentinel"),
    ("rediss+sentinel://h:26379/m", "sentinel"), ("redis+cluster://h:7000", "cluster"),
    ("REDIS+CLUSTER://h:7000", "cluster")])
def test_modes(url, kind):
    assert mode(url) == kind


def test_a_sentinel_url_names_the_service_the_db_and_the_passwords():
    client = connect("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380/mymaster/2"
                     "?sentinel_password=sp", socket_timeout=3)
    pool = client.connection_pool
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["password"] == "s3cret"
    assert pool.connection_kwargs["db"] == 2
    sentinels = pool.sentinel_manager.sentinels
    assert [(s.connection_pool.connection_kwargs["host"],
             s.connection_pool.connection_kwargs["port"]) for s in sentinels] == \
        [("10.0.0.1", 26379), ("10.0.0.2", 26380)]
    assert sentinels[0].connection_pool.connection_kwargs["password"] == "sp"
    assert sentinels[0].connection_pool.connection_kwargs["socket_timeout"] == 3


@pytest.mark.parametrize("url", [
    "redis+sentinel://:pw@h:26379", "redis+sentinel://:pw@h:26379/m/x",
    "redis+sentinel://:pw@h/m", "redis+cluster://:pw@", "redis+cluster://:pw@h:p"])
def test_urls_that_name_no_redis_are_refused_with_the_password_hidden(url):
    with pytest.raises(RedisURLError) as err:
        connect(url)
    assert "pw" not in str(err.value) and "***" in str(err.value)

"""The PoC's demo app: a web hit counter backed by Redis."""
import os

import redis
from flask import Flask

app = Flask(__name__)
cache = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"), port=6379)


@app.route("/")
def hello():
    hits = cache.incr("hits")
    site = os.environ.get("SITE_ID", "unknown site")
    return f"Hello from {site}! I have been seen {hits} times.\n"


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=5000)

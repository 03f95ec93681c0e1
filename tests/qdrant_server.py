"""``python tests/qdrant_server.py --port 6333 --no-store``: the Qdrant REST fake in its own
process (benchmarks and docs run it by this path).  The fake is ``tests/fakes/qdrant.py``."""

from fakes.qdrant import main

if __name__ == "__main__":
    main()

"""``python tests/provider_servers.py --flavor openai --port 0 --latency 0.05``: an embedding
provider fake in its own process (benchmarks and docs run it by this path).  The fakes are
``tests/fakes/providers.py`` and the flavour modules next to it."""

from fakes.providers import main

if __name__ == "__main__":
    main()

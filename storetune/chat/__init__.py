"""Chat contracts: the system prompt renderer, the cards a prompt shows, money in the
store's currency. Every stage that builds, serves or grades a prompt imports these."""

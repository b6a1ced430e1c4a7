"""Money as the store writes it: one formatter, in the currency store.yaml names.

Cards, policies and builder answers all print amounts through `format_money`, so a
EUR store's prompt shows € everywhere (`policies.shipping.currency` in store.yaml).
"""

from __future__ import annotations

from decimal import Decimal

DEFAULT_CURRENCY = "USD"
# Currencies written with a symbol before the amount; any other ISO code follows it.
SYMBOLS = {"USD": "$", "CAD": "C$", "AUD": "A$", "NZD": "NZ$", "EUR": "€", "GBP": "£"}


def format_money(value: Decimal | float | int, currency: str = DEFAULT_CURRENCY) -> str:
    """ "$1,299.00", "€6.95", "12.50 CHF": two decimals, thousands separated."""
    amount = f"{Decimal(value):,.2f}"
    code = currency.upper()
    symbol = SYMBOLS.get(code)
    return f"{symbol}{amount}" if symbol else f"{amount} {code}"


def store_currency(cfg) -> str:
    """The currency a StoreConfig's prices and policies are in."""
    return cfg.policies.shipping.currency or DEFAULT_CURRENCY

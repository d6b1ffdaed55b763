"""Issues: the pure model, the folder store, and the actions that change them."""

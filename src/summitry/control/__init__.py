"""The control plane: small services, one per concern, that take a command, apply the
domain's rule, persist the new state with its audit record in one unit of work, then
carry out the effects through the media ports and announce them."""

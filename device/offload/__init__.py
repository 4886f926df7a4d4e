"""The device's side of offload (docs/offload.md): the wire protocol, what to send in
which order, and letting receipted history leave the card."""

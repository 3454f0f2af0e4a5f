"""The okopy SDN controller: a pure core and a thin os-ken shim.

- `desired`: what a switch should hold, from the policy and built programs;
- `reconcile`: observed switch state + desired state -> intents (pure);
- `intents`: the actions the shim turns into OpenFlow messages.
"""

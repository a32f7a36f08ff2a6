"""The webhook inbox: verified deliveries stored once per delivery key, then processed."""

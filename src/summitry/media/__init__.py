"""The media plane: Janus (supervised or external), rooms, publishing and subscribing."""

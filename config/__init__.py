"""The bottom layer every other package may use: settings, and the Temporal client they make."""

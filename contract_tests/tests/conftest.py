"""The suite's own tests run the suite inside pytest, through pytester."""

pytest_plugins = ["pytester"]

"""This SDK's version: the version of sluice itself (the project() version of the top
CMakeLists.txt; sdk/version.sh checks that they match). pyproject.toml reads it."""

__version__ = "0.1.0"

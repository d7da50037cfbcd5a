package sluice

// Version is this SDK's version: the version of sluice itself (the project() version
// of the top CMakeLists.txt; sdk/version.sh checks that they match).
const Version = "0.1.0"

// SDKName is sent to sluice in Hello.
const SDKName = "sluice-go/" + Version

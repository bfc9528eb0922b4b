//! Scenario files: placeholder

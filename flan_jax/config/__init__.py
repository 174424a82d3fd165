"""Configuration plumbing: gin parsing, the repository/gin roots, t5x macro names."""

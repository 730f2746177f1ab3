//! Cluster API types and the infrastructure-provider contract.

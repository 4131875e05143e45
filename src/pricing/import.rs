//! Catalog import (in progress).

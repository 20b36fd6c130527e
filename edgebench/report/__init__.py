"""Reports: rendered from the store only, so any stored run can be re-rendered without hardware."""

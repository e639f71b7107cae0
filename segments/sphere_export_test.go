package segments

// PolygonArea is polygonArea, for the tests that hold it to PostGIS.
var PolygonArea = polygonArea

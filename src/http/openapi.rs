//! Finishing touches on the generated OpenAPI document, so that it says what the server
//! does: statuses a route answers that its types cannot declare, query parameters that
//! are optional (never `nullable`: a query cannot send null), a required query parameter
//! behind an `Option`, bodies that require what a shared schema leaves optional, and path
//! aliases. A helper that finds no such operation panics: the document is built from the
//! code at start, so that is a bug every test sees at once.

use rocket_okapi::okapi::openapi3::{
    Components, MediaType, OpenApi, Operation, ParameterValue, PathItem, RefOr, RequestBody,
    Response,
};
use rocket_okapi::okapi::schemars::schema::{InstanceType, Schema, SchemaObject, SingleOrVec};
use serde_json::Value;

fn operations_of(item: &mut PathItem) -> [(&'static str, &mut Option<Operation>); 8] {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("options", &mut item.options),
        ("head", &mut item.head),
        ("patch", &mut item.patch),
        ("trace", &mut item.trace),
    ]
}

fn operation<'s>(spec: &'s mut OpenApi, method: &str, path: &str) -> &'s mut Operation {
    let item = spec
        .paths
        .get_mut(path)
        .unwrap_or_else(|| panic!("the document has no path {path}"));
    let found = operations_of(item)
        .into_iter()
        .find(|(m, _)| *m == method)
        .and_then(|(_, op)| op.as_mut());
    found.unwrap_or_else(|| panic!("the document has no {method} {path}"))
}

fn error_response(text: &str) -> RefOr<Response> {
    RefOr::Object(Response {
        description: text.to_string(),
        content: [(
            "application/json".to_string(),
            MediaType {
                schema: Some(SchemaObject::new_ref(
                    "#/components/schemas/ErrorBody".to_string(),
                )),
                ..Default::default()
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    })
}

/// Statuses operations of a module's document also answer: `(method, path as in the
/// module, code, description)`.
pub fn answers(spec: &mut OpenApi, list: &[(&str, &str, u16, &str)]) {
    for (method, path, code, text) in list {
        operation(spec, method, path)
            .responses
            .responses
            .insert(code.to_string(), error_response(text));
    }
}

fn parameter<'s>(
    spec: &'s mut OpenApi,
    (method, path): (&str, &str),
    location: &str,
    name: &str,
) -> &'s mut rocket_okapi::okapi::openapi3::Parameter {
    operation(spec, method, path)
        .parameters
        .iter_mut()
        .find_map(|p| match p {
            RefOr::Object(p) if p.name == name && p.location == location => Some(p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {location} parameter {name} on {method} {path}"))
}

/// A query parameter that the handler takes as `Option` (to answer its own 422) but that
/// the route requires.
pub fn require_query(spec: &mut OpenApi, method: &str, path: &str, name: &str) {
    parameter(spec, (method, path), "query", name).required = true;
}

/// Sets the schema of a parameter (`location` "query" or "path") whose Rust type says
/// less than the handler checks.
pub fn param_schema(
    spec: &mut OpenApi,
    (method, path): (&str, &str),
    location: &str,
    name: &str,
    schema: Value,
) {
    let schema: SchemaObject = serde_json::from_value(schema).expect("a JSON schema");
    if let ParameterValue::Schema { schema: s, .. } =
        &mut parameter(spec, (method, path), location, name).value
    {
        *s = schema;
    }
}

/// A body whose shared schema leaves fields optional (for PATCH) but that this operation
/// requires, in each of its media types (JSON, and a multipart form if it takes one). A
/// shared schema (a `$ref`) is copied into the operation with the fields required and not
/// `nullable` (a null is as missing as an absent field): a schema of `allOf` the shared
/// one plus `required` says the same, but schemathesis cannot generate data for it.
pub fn require_body_fields(spec: &mut OpenApi, method: &str, path: &str, fields: &[&str]) {
    let shared_schemas = spec
        .components
        .as_ref()
        .map(|c| c.schemas.clone())
        .unwrap_or_default();
    let Some(RefOr::Object(body)) = &mut operation(spec, method, path).request_body else {
        panic!("no body on {method} {path}");
    };
    assert!(
        body.content.contains_key("application/json"),
        "no JSON body on {method} {path}"
    );
    for media in body.content.values_mut() {
        let mut schema = media.schema.take().unwrap_or_default();
        if let Some(reference) = &schema.reference {
            let name = reference.trim_start_matches("#/components/schemas/");
            schema = shared_schemas
                .get(name)
                .unwrap_or_else(|| panic!("no schema {name} for {method} {path}"))
                .clone();
        }
        for field in fields {
            match schema.object().properties.get_mut(*field) {
                Some(Schema::Object(property)) => {
                    property.extensions.remove("nullable");
                }
                _ => panic!("{method} {path} has no field {field}"),
            }
        }
        schema.object().required = fields.iter().map(|f| f.to_string()).collect();
        media.schema = Some(schema);
    }
}

/// Documents `alias` (a path prefix the server rewrites to `target`) with the operations
/// of every path under `target`, each marked as the alias.
pub fn alias(spec: &mut OpenApi, alias: &str, target: &str) {
    let mut added = Vec::new();
    for (path, item) in &spec.paths {
        let Some(rest) = path.strip_prefix(target) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            continue;
        }
        let mut item = item.clone();
        for (method, op) in operations_of(&mut item) {
            let Some(op) = op else { continue };
            op.operation_id = op.operation_id.take().map(|id| format!("{id}_alias"));
            op.summary = Some(format!("Alias of {} {path}", method.to_uppercase()));
            op.description = Some(format!("The same route as `{path}`."));
        }
        added.push((format!("{alias}{rest}"), item));
    }
    spec.paths.extend(added);
}

/// Whether a JSON body's schema (a component, by reference) requires no field: then an
/// empty body, which the server reads as `{}`, is as good as one, and the body optional.
fn requires_nothing(components: &Option<Components>, body: &RefOr<RequestBody>) -> bool {
    let RefOr::Object(body) = body else {
        return false;
    };
    let Some(schema) = body
        .content
        .get("application/json")
        .and_then(|m| m.schema.as_ref())
    else {
        return false;
    };
    let Some(name) = schema
        .reference
        .as_deref()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    else {
        return false;
    };
    match components.as_ref().and_then(|c| c.schemas.get(name)) {
        Some(c) => c.object.as_ref().is_none_or(|o| o.required.is_empty()),
        None => false,
    }
}

/// The largest integer a JSON number holds exactly (2^53 - 1).
const JSON_SAFE: f64 = 9_007_199_254_740_991.0;

/// Integer fields without bounds of their own get those of their Rust type, within what
/// JSON numbers hold exactly: serde refuses a number past `u64`/`i64` and the schema
/// should say so. Follows properties and array items.
fn bound_integers(schema: &mut SchemaObject) {
    let integer = schema.instance_type == Some(InstanceType::Integer.into());
    if integer {
        let (low, high) = match schema.format.as_deref() {
            Some(f) if f.starts_with("uint") => (0.0, JSON_SAFE),
            _ => (-JSON_SAFE, JSON_SAFE),
        };
        let n = schema.number();
        n.minimum = Some(n.minimum.unwrap_or(low).max(low));
        n.maximum = Some(n.maximum.unwrap_or(high).min(high));
    }
    if let Some(object) = &mut schema.object {
        for p in object.properties.values_mut() {
            if let Schema::Object(o) = p {
                bound_integers(o);
            }
        }
    }
    if let Some(array) = &mut schema.array {
        if let Some(SingleOrVec::Single(item)) = &mut array.items {
            if let Schema::Object(o) = item.as_mut() {
                bound_integers(o);
            }
        }
    }
}

/// The passes every document gets once merged: a query parameter is optional or
/// required, never `nullable`; an id in a path is a positive integer (SPEC) that JSON
/// holds exactly; a JSON body that requires no field may be left out; every operation
/// that reads a body may answer 413.
pub fn finish(spec: &mut OpenApi) {
    if let Some(c) = &mut spec.components {
        for schema in c.schemas.values_mut() {
            bound_integers(schema);
        }
    }
    let components = spec.components.clone();
    for item in spec.paths.values_mut() {
        for (_, op) in operations_of(item) {
            let Some(op) = op else { continue };
            for p in &mut op.parameters {
                if let RefOr::Object(p) = p {
                    let ParameterValue::Schema { schema, .. } = &mut p.value else {
                        continue;
                    };
                    if p.location == "query" {
                        schema.extensions.remove("nullable");
                    }
                    let integer = schema.instance_type == Some(InstanceType::Integer.into());
                    if p.location == "path" && integer {
                        schema.number().minimum = Some(1.0);
                        schema.number().maximum = Some(9_007_199_254_740_991.0);
                    }
                }
            }
            if let Some(body) = &mut op.request_body {
                if requires_nothing(&components, body) {
                    if let RefOr::Object(b) = body {
                        b.required = false;
                    }
                }
            }
            if op.request_body.is_some() {
                op.responses.responses.insert(
                    "413".to_string(),
                    error_response("Request body larger than the limit"),
                );
            }
        }
    }
}
